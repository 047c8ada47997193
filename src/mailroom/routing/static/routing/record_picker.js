"use strict";
// Searchable record pickers of the alias form (select2 over the admin's records/ search):
// they ask for records of the type chosen beside them and of the alias's company, and forget
// their record when the type changes.
{
    const $ = django.jQuery;

    function field(name) {
        return document.querySelector(`[name="${name}"]`);
    }

    $(() => {
        $("select.mr-record-picker").each((_i, element) => {
            const typeSelect = field(element.dataset.typeField);
            $(element).select2({
                width: "100%",
                ajax: {
                    url: element.dataset.searchUrl,
                    delay: 250,
                    data: (params) => ({
                        term: params.term || "",
                        page: params.page || 1,
                        type: typeSelect ? typeSelect.value : "",
                        company: field("company") ? field("company").value : "",
                    }),
                },
            });
            if (typeSelect) {
                typeSelect.addEventListener("change", () => {
                    $(element).val(null).trigger("change");
                });
            }
        });
    });
}
